#include <stdio.h>
int main(void) { fprintf(stderr, "islewatch: under construction\n"); return 1; }
