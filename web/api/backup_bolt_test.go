package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/bolt"
	"github.com/approvals-dev/approvals/web/api"
)

// A backup of a live bbolt store, taken while sign-ups keep arriving,
// restores to a file that opens, passes bbolt's and the schema's checks,
// and holds the requests and decisions made before it.
func TestBackupRestoresBoltStore(t *testing.T) {
	dir := t.TempDir()
	clock := approvals.ClockFunc(func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) })
	store, err := bolt.Open(filepath.Join(dir, "live.db"), bolt.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := &approvals.Service{Store: store, Clock: clock}
	const key = "backup-key-0123456789abcdef"
	h, err := api.New(api.Config{
		Service: svc, APIKeys: map[string]string{"nightly": key}, Backup: store.Backup,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	var ids []string
	for i := range 50 {
		r, _, err := svc.RequestApproval(ctx, approvals.SignUp{Email: fmt.Sprintf("p%02d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	call := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := call("POST", "/api/v1/requests/"+ids[7]+"/approve")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("approve: %d", resp.StatusCode)
	}

	// Writers keep going while the backup streams.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := svc.RequestApproval(ctx, approvals.SignUp{Email: fmt.Sprintf("during%d@example.com", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	resp = call("GET", "/api/v1/backup")
	restored := filepath.Join(dir, "restored.db")
	f, err := os.Create(restored)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, resp.Body)
	resp.Body.Close()
	close(stop)
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err != nil || resp.StatusCode != 200 || n == 0 {
		t.Fatalf("backup: %d, %d bytes, %v", resp.StatusCode, n, err)
	}

	back, err := bolt.Open(restored, bolt.Options{Clock: clock, ReadOnly: true})
	if err != nil {
		t.Fatalf("opening the restored backup: %v", err)
	}
	defer back.Close()
	if err := back.Check(); err != nil {
		t.Fatalf("restored backup is inconsistent: %v", err)
	}
	for _, id := range ids {
		if _, err := back.Get(ctx, id); err != nil {
			t.Errorf("request %s missing from the backup: %v", id, err)
		}
	}
	r, err := back.Get(ctx, ids[7])
	if err != nil || r.Status != approvals.StatusApproved || r.Decision.By != "api_key:nightly" {
		t.Errorf("approved request in the backup: %+v, %v", r, err)
	}
	counts, err := back.Count(ctx)
	if err != nil || counts[approvals.StatusPending] < 49 {
		t.Errorf("counts in the backup: %v, %v", counts, err)
	}
}
