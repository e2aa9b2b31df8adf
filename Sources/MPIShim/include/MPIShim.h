// MPIShim: what Swift cannot see of Open MPI and ScaLAPACK. Accessors and prototypes only — no logic.
#ifndef NTKSCAPE_MPISHIM_H
#define NTKSCAPE_MPISHIM_H

#include <mpi.h>

// Open MPI's handles are macros casting addresses of globals; Swift imports none of them.
static inline MPI_Comm ntk_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm ntk_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype ntk_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ntk_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ntk_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype ntk_int(void) { return MPI_INT; }
static inline MPI_Datatype ntk_byte(void) { return MPI_BYTE; }
static inline MPI_Op ntk_op_sum(void) { return MPI_SUM; }
static inline MPI_Op ntk_op_max(void) { return MPI_MAX; }
static inline MPI_Op ntk_op_min(void) { return MPI_MIN; }
static inline void *ntk_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Info ntk_info_null(void) { return MPI_INFO_NULL; }
static inline int ntk_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int ntk_any_source(void) { return MPI_ANY_SOURCE; }
static inline int ntk_any_tag(void) { return MPI_ANY_TAG; }
static inline int ntk_undefined(void) { return MPI_UNDEFINED; }
static inline MPI_Comm ntk_comm_self(void) { return MPI_COMM_SELF; }
static inline MPI_Errhandler ntk_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int ntk_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int ntk_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int ntk_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int ntk_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }

// BLACS C interface (values, not pointers). Shipped inside libscalapack-openmpi without a header.
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int icontxt, int what, int *val);
void Cblacs_gridinit(int *icontxt, char *order, int nprow, int npcol);
void Cblacs_gridmap(int *icontxt, int *usermap, int ldumap, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);

// ScaLAPACK / PBLAS / TOOLS (Fortran: every argument by pointer, INTEGER is 32-bit; a CHARACTER
// argument adds a hidden size_t length after the last real argument).
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
// Index maps of the 1-D block-cyclic distribution; indices are 1-based; INDXG2L and INDXG2P ignore
// IPROC.
int indxg2l_(const int *indxglob, const int *nb, const int *iproc, const int *isrcproc,
             const int *nprocs);
int indxl2g_(const int *indxloc, const int *nb, const int *iproc, const int *isrcproc,
             const int *nprocs);
int indxg2p_(const int *indxglob, const int *nb, const int *iproc, const int *isrcproc,
             const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *w, double *z, const int *iz, const int *jz,
              const int *descz, double *work, const int *lwork, int *iwork, const int *liwork,
              int *info, size_t jobz_len, size_t uplo_len);
void pdpotrf_(const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, int *info, size_t uplo_len);
void pdpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *ia,
              const int *ja, const int *desca, double *b, const int *ib, const int *jb,
              const int *descb, int *info, size_t uplo_len);
void pdgemr2d_(const int *m, const int *n, const double *a, const int *ia, const int *ja,
               const int *desca, double *b, const int *ib, const int *jb, const int *descb,
               const int *ictxt);

#endif
