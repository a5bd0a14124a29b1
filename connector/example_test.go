package connector_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/connector"
	"github.com/approvals-dev/approvals/store/memory"
)

func ExampleNew() {
	clock := approvals.ClockFunc(func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) })
	svc := &approvals.Service{Store: memory.New(clock), Clock: clock}
	h, err := connector.New(connector.Config{
		Service: svc,
		Auth:    connector.Auth{Username: "entra", Password: "s3cret-from-the-connector-settings"},
		Messages: map[connector.MessageKey]map[string]string{
			connector.MsgPending: {"en": "Thanks! We review requests within two working days."},
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/connector/", h) // the handler serves the full paths

	call := func(path, body string) {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth("entra", "s3cret-from-the-connector-settings")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	person := `{"email":"johnsmith@outlook.com","identities":[{"signInType":"federated","issuer":"facebook.com","issuerAssignedId":"0123456789"}],"displayName":"John Smith","ui_locales":"%s"}`
	call(connector.CheckApprovalStatusPath, fmt.Sprintf(person, "en-US"))
	call(connector.RequestApprovalPath, fmt.Sprintf(person, "en-US"))
	call(connector.CheckApprovalStatusPath, fmt.Sprintf(person, "fr-FR"))
	call(connector.RequestApprovalPath, `{"email":"not an address","ui_locales":"de-DE"}`)

	// Output:
	// 200 {"version":"1.0.0","action":"Continue"}
	// 200 {"version":"1.0.0","action":"ShowBlockPage","userMessage":"Thanks! We review requests within two working days."}
	// 200 {"version":"1.0.0","action":"ShowBlockPage","userMessage":"Votre demande d'accès est déjà en cours de traitement. Vous recevrez une notification lorsqu'elle aura été approuvée."}
	// 400 {"version":"1.0.0","status":400,"action":"ValidationError","userMessage":"Ihre E-Mail-Adresse ist ungültig. Bitte verwenden Sie eine gültige E-Mail-Adresse und versuchen Sie es erneut."}
}
