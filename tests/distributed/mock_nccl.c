/*
 * A stand-in libnccl.so.2 with NCCL's real prototypes (NVIDIA/nccl
 * src/nccl.h.in), for tests on machines without a GPU. "Device" pointers are
 * host memory (the emulated CUDA device allocates with malloc), and the
 * collectives are carried out with Open MPI on MPI_COMM_WORLD, so several
 * ranks under mpirun really exchange data through it (without MPI
 * initialised, a group of one: copies).
 *
 * ncclCommInitRank checks what a real NCCL needs: the unique id (passed by
 * value, 128 bytes) identical on every rank (it is all-gathered and
 * compared: a rank that made its own id fails with ncclInvalidUsage), nranks
 * and rank equal to MPI's. ncclGetUniqueId makes an id from the process id,
 * so ids made on two ranks differ.
 *
 * Controls: MOCK_NCCL_FAIL_INIT=1 makes ncclCommInitRank fail with
 * ncclInvalidUsage; mock_nccl_calls() reports the calls made.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { char internal[128]; } ncclUniqueId;
typedef struct mock_comm { int nranks, rank; uint64_t hash; } mock_comm;
typedef struct mock_comm *ncclComm_t;

enum { ncclSuccess = 0, ncclInvalidArgument = 4, ncclInvalidUsage = 5 };

static int calls_allreduce, calls_broadcast, calls_allgather, calls_init;
static int last_dtype = -1, last_op = -1;
static size_t last_count;

int mock_nccl_calls(int *out) {
  out[0] = calls_init;
  out[1] = calls_allreduce;
  out[2] = calls_broadcast;
  out[3] = calls_allgather;
  out[4] = last_dtype;
  out[5] = last_op;
  out[6] = (int)last_count;
  return 0;
}

int ncclGetVersion(int *version) {
  *version = 22707;
  return ncclSuccess;
}

int ncclGetUniqueId(ncclUniqueId *id) {
  unsigned pid = (unsigned)getpid();
  for (int i = 0; i < 128; i++) id->internal[i] = (char)((pid >> (i % 24)) + i * 31);
  return ncclSuccess;
}

/* Whether MPI is initialised (a single-rank group may run without it). */
static int mpi_on(void) {
  int on = 0;
  MPI_Initialized(&on);
  return on;
}

static uint64_t fnv(const char *p, int n) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

int ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
  calls_init++;
  const char *fail = getenv("MOCK_NCCL_FAIL_INIT");
  if (fail && fail[0] == '1') return ncclInvalidUsage;
  int size = 1, me = 0;
  uint64_t h = fnv(id.internal, 128);
  int same = 1;
  if (mpi_on()) {
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    uint64_t *all = malloc(sizeof(uint64_t) * size);
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int i = 0; i < size; i++) same &= all[i] == h;
    free(all);
  }
  if (nranks != size || rank != me) return ncclInvalidArgument;
  if (!same) return ncclInvalidUsage;
  mock_comm *c = malloc(sizeof *c);
  c->nranks = nranks;
  c->rank = rank;
  c->hash = h;
  *comm = c;
  return ncclSuccess;
}

static MPI_Datatype type_of(int dtype) {
  return dtype == 7 ? MPI_FLOAT : dtype == 2 ? MPI_INT : MPI_DATATYPE_NULL;
}

int ncclAllReduce(const void *send, void *recv, size_t count, int dtype, int op,
                  ncclComm_t comm, void *stream) {
  (void)stream;
  calls_allreduce++;
  last_dtype = dtype;
  last_op = op;
  last_count = count;
  MPI_Datatype t = type_of(dtype);
  if (t == MPI_DATATYPE_NULL || op < 0 || op > 4 || !comm) return ncclInvalidArgument;
  MPI_Op o = op == 1 ? MPI_PROD : op == 2 ? MPI_MAX : op == 3 ? MPI_MIN : MPI_SUM;
  if (mpi_on()) {
    MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, t, o, MPI_COMM_WORLD);
  } else if (send != recv) {
    memcpy(recv, send, count * 4);
  }
  if (op == 4) {
    if (dtype != 7) return ncclInvalidArgument;
    float *f = recv;
    for (size_t i = 0; i < count; i++) f[i] /= (float)comm->nranks;
  }
  return ncclSuccess;
}

int ncclBroadcast(const void *send, void *recv, size_t count, int dtype, int root,
                  ncclComm_t comm, void *stream) {
  (void)stream;
  calls_broadcast++;
  MPI_Datatype t = type_of(dtype);
  if (t == MPI_DATATYPE_NULL || !comm) return ncclInvalidArgument;
  if (send != recv && comm->rank == root) memcpy(recv, send, count * 4);
  if (mpi_on()) MPI_Bcast(recv, (int)count, t, root, MPI_COMM_WORLD);
  return ncclSuccess;
}

int ncclAllGather(const void *send, void *recv, size_t count, int dtype,
                  ncclComm_t comm, void *stream) {
  (void)stream;
  calls_allgather++;
  MPI_Datatype t = type_of(dtype);
  if (t == MPI_DATATYPE_NULL || !comm) return ncclInvalidArgument;
  if (mpi_on()) MPI_Allgather(send, (int)count, t, recv, (int)count, t, MPI_COMM_WORLD);
  else memcpy(recv, send, count * 4);
  return ncclSuccess;
}

int ncclCommDestroy(ncclComm_t comm) {
  free(comm);
  return ncclSuccess;
}

int ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

int ncclCommGetAsyncError(ncclComm_t comm, int *err) {
  (void)comm;
  *err = ncclSuccess;
  return ncclSuccess;
}

const char *ncclGetErrorString(int result) {
  switch (result) {
  case 0: return "no error";
  case 4: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
  case 5: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
  default: return "unknown result code";
  }
}
