/*
 * The container's last hop before the user's program (CVE-2019-5736 defence).
 *
 * lbox-runc copies this static binary into a sealed memfd and execs the user's program through it,
 * so that while and after the program starts, /proc/PID/exe never names the host's lbox binary:
 * a container that executes /proc/self/exe gets this sealed, unwritable copy instead.
 *
 * argv: trampoline PROGRAM ARGV0 [ARGS...]   -> execve(PROGRAM, [ARGV0, ARGS...], envp)
 *
 * On x86_64 and aarch64 it is built without libc (a few hundred bytes, nothing to initialise: it
 * sits on every container's start path); elsewhere with a static libc.
 */
#include "nolibc.h"

#ifdef LBOX_SYSCALLS
void entry(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	if (argc >= 3) {
		long e = -sys3(NR_EXECVE, (long)argv[1], (long)(argv + 2), (long)envp);
		say(argv[1]);
		say(exec_error(e));
	}
	quit(127);
}
#else
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp)
{
	if (argc < 3)
		return 127;
	execve(argv[1], argv + 2, envp);
	perror(argv[1]);
	return 127;
}
#endif
