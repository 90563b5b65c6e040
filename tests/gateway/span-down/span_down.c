/*
 * span-down: destroys a DAHDI dynamic span, the way the VM test takes a span down. Its partner
 * then receives nothing and dahdi_dynamic puts it in red alarm after a second.
 *
 *   span-down DRIVER ADDR NUMCHANS      e.g.  span-down loc 1:1 24
 *
 * Nobody may have the span's channels open.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* From dahdi/user.h; Debian installs no DAHDI headers. */
struct dahdi_dynamic_span {
	char driver[20];
	char addr[40];
	int numchans;
	int timing;
	int spanno;
};
#define DAHDI_DYNAMIC_DESTROY _IOW(0xDA, 81, struct dahdi_dynamic_span)

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s DRIVER ADDR NUMCHANS\n", argv[0]);
		return 2;
	}
	struct dahdi_dynamic_span span;
	memset(&span, 0, sizeof(span));
	snprintf(span.driver, sizeof(span.driver), "%s", argv[1]);
	snprintf(span.addr, sizeof(span.addr), "%s", argv[2]);
	span.numchans = atoi(argv[3]);
	int fd = open("/dev/dahdi/ctl", O_RDWR);
	if (fd < 0) {
		perror("/dev/dahdi/ctl");
		return 1;
	}
	if (ioctl(fd, DAHDI_DYNAMIC_DESTROY, &span)) {
		perror("DAHDI_DYNAMIC_DESTROY");
		return 1;
	}
	return 0;
}
