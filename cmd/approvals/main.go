// Command approvals is the sign-up approval and guest-onboarding server for
// Microsoft Entra ID. It serves the API connector endpoints Entra calls
// during self-service sign-up, the reviewer UI and the admin API, and
// provisions approved guests through Microsoft Graph.
//
//	approvals serve        run the server from configuration
//	approvals demo         run everything locally, with no Azure tenant
//	approvals export       export decisions from a stopped server's data file or PostgreSQL
//	approvals migrate      copy a stopped server's data file into an empty PostgreSQL database
//	approvals healthcheck  probe a running server's /readyz (container health checks)
//	approvals version      print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/approvals-dev/approvals/cmd/internal/command"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module build information.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `approvals: sign-up approvals and guest onboarding for Microsoft Entra ID

Usage:
  approvals serve   [flags]   run the server (configuration from flags and APPROVALS_* variables)
  approvals demo    [flags]   run everything on this machine with no Azure tenant
  approvals export  --db FILE | --database-url URL [--format csv|json|ndjson] [--status S] [--since T] [--until T] [--out FILE]
  approvals migrate --db FILE --database-url URL  copy a stopped server's data file into an empty PostgreSQL database
  approvals healthcheck [--url URL]  probe a running server's /readyz: exit 0 when ready, 1 otherwise
  approvals version           print the version

Run "approvals COMMAND --help" for the flags of a command.
`

// run runs the command named by args[0] and returns the exit status. One
// clear line goes to stderr on failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, `approvals: no command given; run "approvals help" for the list`)
		return 2
	}
	var cmd command.Command
	switch args[0] {
	case "serve":
		cmd = &Main{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	case "demo":
		cmd = &Demo{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	case "export":
		cmd = &Export{Stdout: stdout, Stderr: stderr}
	case "migrate":
		cmd = &Migrate{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	case "healthcheck":
		cmd = &Healthcheck{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "approvals", buildVersion())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "approvals: unknown command %q; run \"approvals help\" for the list\n", args[0])
		return 2
	}
	return command.Run(ctx, cmd, args[1:], stderr, "approvals "+args[0], nil)
}

// newFlagSet returns the flag set of the command name, whose --help
// prints usage (the synopsis and what the command does) and then the
// flags.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a command's flags. A flag it does not know, a bad
// value or a stray argument is one error line (the caller prints it)
// pointing at --help, not the whole usage text; --help prints the usage to
// stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	usage := fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		if usage != nil {
			usage()
		} else {
			fs.PrintDefaults()
		}
		return err
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		return fmt.Errorf("%v; run \"%s --help\" for its flags", err, fs.Name())
	}
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
