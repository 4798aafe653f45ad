// Command driftline runs and operates Driftline: the pipeline, serving and ingest workers, the
// control-plane API and console, and the operator commands (runs, approvals, schedules,
// models, audit) in one binary.
package main

import "github.com/driftline/driftline/internal/cli"

func main() { cli.Main() }
