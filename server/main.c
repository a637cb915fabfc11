#include <stdio.h>
int main(void) { fprintf(stderr, "islewatchd: under construction\n"); return 1; }
