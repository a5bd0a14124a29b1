module github.com/approvals-dev/approvals

go 1.26
