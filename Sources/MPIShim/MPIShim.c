// Intentionally empty: MPIShim.h holds the accessors and prototypes; SwiftPM needs one source file.
#include "MPIShim.h"
