#pragma once

namespace ks::cli {

// Parses the command line, runs the chosen subcommand, returns the exit code.
int main(int argc, char** argv);

}  // namespace ks::cli
