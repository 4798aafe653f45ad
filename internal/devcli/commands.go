// Package devcli holds the commands of driftline-dev: the demo and the development tools around
// it (the demo's data generator, weather source and client traffic, a Kafka-protocol broker
// and a producer). They are not part of the production binary.
package devcli

import "github.com/spf13/cobra"

// Commands are driftline-dev's commands besides the production ones.
func Commands() []*cobra.Command {
	dev := []*cobra.Command{demoCmd(), datagenCmd(), trafficCmd(), weatherCmd(), kafkaDevCmd(), produceCmd()}
	for _, c := range dev {
		c.GroupID = "dev"
	}
	return dev
}
