#include <stdio.h>
int main(void) {
    fputs("batpak: CLI not built\n", stderr);
    return 1;
}
