/*
 * The container's last hop before the user's program (CVE-2019-5736 defence).
 *
 * lbox-runc copies this static binary into a sealed memfd and execs the user's program through it,
 * so that while and after the program starts, /proc/PID/exe never names the host's lbox binary:
 * a container that executes /proc/self/exe gets this sealed, unwritable copy instead.
 *
 * argv: trampoline PROGRAM ARGV0 [ARGS...]   -> execve(PROGRAM, [ARGV0, ARGS...], envp)
 */
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
