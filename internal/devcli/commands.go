// Package devcli holds the commands of driftline-dev: the demo and the development tools around
// it (the demo's data generator, weather source and client traffic, a Kafka-protocol broker
// and a producer). They are not part of the production binary.
package devcli

import "github.com/driftline/driftline/internal/cli"

// Commands are driftline-dev's commands besides the production ones.
var Commands = map[string]cli.Command{
	"datagen":   {Summary: "write the demo retail dataset to S3", Run: cmdDatagen},
	"traffic":   {Summary: "send demo traffic to the serving worker", Run: cmdTraffic},
	"demo":      {Summary: "run the end-to-end demo (make demo)", Run: cmdDemo},
	"weather":   {Summary: "serve the demo's weather source (feature enrichment)", Run: cmdWeather},
	"kafka-dev": {Summary: "run a Kafka-protocol broker for development and tests (franz-go's kfake)", Run: cmdKafkaDev},
	"produce":   {Summary: "stream the demo's retail days into a Kafka topic as JSON records", Run: cmdProduce},
}
