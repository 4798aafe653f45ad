// Command driftline-dev is driftline with the demo and its development tools: `make demo` runs
// `driftline-dev demo`; the demo's data generator, weather source, client traffic, a
// Kafka-protocol broker (franz-go's kfake) and a producer. Operators run `driftline`.
package main

import (
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/internal/devcli"
)

func main() { cli.Main(devcli.Commands()...) }
