package command

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// fake is a command whose steps return the errors given and record what
// ran.
type fake struct {
	parse, run, close error
	ran               []string
}

func (f *fake) ParseFlags([]string) error { f.ran = append(f.ran, "parse"); return f.parse }
func (f *fake) Run(context.Context) error { f.ran = append(f.ran, "run"); return f.run }
func (f *fake) Close() error              { f.ran = append(f.ran, "close"); return f.close }

func TestRun(t *testing.T) {
	errQuiet := errors.New("already explained")
	for _, tt := range []struct {
		name     string
		c        fake
		quiet    error
		wantCode int
		wantRan  string
		wantErr  string // the line on stderr
	}{
		{"success", fake{}, nil, 0, "parse run close", ""},
		{"help", fake{parse: flag.ErrHelp}, nil, 0, "parse", ""},
		{"bad flags", fake{parse: errors.New("bad -x")}, nil, 1, "parse close", "tool: bad -x\n"},
		{"failed run", fake{run: errors.New("line one\nline two")}, nil, 1, "parse run close", "tool: line one; line two\n"},
		{"failed close", fake{close: errors.New("flush")}, nil, 1, "parse run close", "tool: flush\n"},
		{"run error first", fake{run: errors.New("run"), close: errors.New("close")}, nil, 1, "parse run close", "tool: run\n"},
		{"quiet", fake{run: errQuiet}, errQuiet, 1, "parse run close", ""},
		{"quiet wrapped", fake{parse: errors.Join(errQuiet)}, errQuiet, 1, "parse close", ""},
		{"not quiet", fake{run: errors.New("other")}, errQuiet, 1, "parse run close", "tool: other\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			c := tt.c
			if code := Run(context.Background(), &c, nil, &stderr, "tool", tt.quiet); code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if got := strings.Join(c.ran, " "); got != tt.wantRan {
				t.Errorf("ran %q, want %q", got, tt.wantRan)
			}
			if stderr.String() != tt.wantErr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantErr)
			}
		})
	}
}
