// Package command runs one command of the project's binaries (approvals
// serve, export, ...; approvals-bench): it parses the flags, runs, closes,
// and turns the outcome into an exit status and at most one error line.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Command is one command of a binary.
type Command interface {
	// ParseFlags reads and checks the arguments; flag.ErrHelp means it
	// printed the help.
	ParseFlags(args []string) error
	// Run does the work.
	Run(ctx context.Context) error
	// Close releases what ParseFlags and Run opened; it is called once
	// after them, whatever they returned, unless the flags asked for the
	// help.
	Close() error
}

// Run parses args into c, runs it when the flags are good, and closes it.
// It returns the exit status: 0 when the command succeeded or printed its
// help, 1 when it failed. The error goes to stderr as one line after
// prefix and ": ", unless it is (errors.Is) quiet, an error the command
// has already explained; quiet may be nil.
func Run(ctx context.Context, c Command, args []string, stderr io.Writer, prefix string, quiet error) int {
	err := c.ParseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = c.Run(ctx)
	}
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return 0
	}
	if quiet == nil || !errors.Is(err, quiet) {
		fmt.Fprintf(stderr, "%s: %s\n", prefix, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return 1
}
