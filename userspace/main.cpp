// killswitch: one binary, subcommands. Everything lives in the libraries.
#include "cli/cli.h"

int main(int argc, char** argv) { return ks::cli::main(argc, argv); }
