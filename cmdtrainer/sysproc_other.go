//go:build !linux

package cmdtrainer

import "syscall"

// sysProcAttr puts the command in a process group of its own. Network isolation is Linux's
// (network namespaces): elsewhere a command of network none does not start.
func sysProcAttr(network string) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
