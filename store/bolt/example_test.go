package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/bolt"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "approvals")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "approvals.db")
	clock := approvals.ClockFunc(func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) })

	s, err := bolt.Open(path, bolt.Options{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	svc := &approvals.Service{Store: s, Clock: clock}
	r, created, _ := svc.RequestApproval(context.Background(), approvals.SignUp{Email: "johnsmith@outlook.com"})
	fmt.Println(created, r.Status)

	// While the server holds the file, a second process cannot open it.
	_, err = bolt.Open(path, bolt.Options{ReadOnly: true, Timeout: -1})
	fmt.Println(errors.Is(err, bolt.ErrLocked))
	// Output:
	// true pending
	// true
}
