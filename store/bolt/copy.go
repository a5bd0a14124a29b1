package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// SessionsAndKeys returns every stored session and the cookie keys (newest
// first), in one read transaction: what `approvals migrate` copies into
// PostgreSQL beside the requests and the audit trail, so that the move
// signs nobody out.
func (s *Store) SessionsAndKeys(ctx context.Context) (sessions []*approvals.Session, keys []approvals.CookieKey, err error) {
	defer wrap(&err, "read sessions")
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketSessions); b != nil {
			if err := b.ForEach(func(k, v []byte) error {
				ss := &approvals.Session{}
				if err := json.Unmarshal(v, ss); err != nil {
					return fmt.Errorf("damaged data file: session: %w", err)
				}
				sessions = append(sessions, ss)
				return nil
			}); err != nil {
				return err
			}
		}
		keys, err = readCookieKeys(tx)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return sessions, keys, nil
}
