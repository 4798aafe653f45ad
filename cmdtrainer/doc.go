// Package cmdtrainer is the command trainer: a Temporal worker's driftline.train.v1 that runs
// a user's command (python3 train.py) on the run's training and validation rows, with a time
// limit, a memory limit and no network, and hands the model it writes back to the loop. The
// spec names a command (trainer.command); the trainer's operator maps names to command lines,
// so a spec never supplies one. The contract is docs/models.md, "Command trainers".
//
// It imports pipeline, model, objstore and the Temporal SDK's activity package; no workflow code.
package cmdtrainer
