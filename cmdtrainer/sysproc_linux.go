package cmdtrainer

import (
	"os"
	"syscall"
)

// sysProcAttr puts the command in a process group of its own (killed as one) and, without
// network, in a network namespace of its own: no interface but a loopback that is down. A
// trainer not running as root maps itself into a user namespace to be allowed that.
func sysProcAttr(network string) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if network == NetworkHost {
		return attr
	}
	attr.Cloneflags = syscall.CLONE_NEWNET
	if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	return attr
}
