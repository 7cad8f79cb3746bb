// Minimal: can survivors keep doing point-to-point after a peer's process dies?
// Rank 2 of 4 raises SIGKILL after a barrier; survivors then ring-exchange
// among themselves, and each also tries a recv from the dead rank (with a
// polling deadline) to see what MPI reports.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <signal.h>
#include <thread>
#include <unistd.h>

int main(int argc, char** argv)
{
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  const int dead = 2;
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == dead) {
    raise(SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Survivors: 0 -> 1 -> 3 -> 0 ring, 20 rounds.
  const int ring[3] = {0, 1, 3};
  int me = rank == 3 ? 2 : rank;
  int next = ring[(me + 1) % 3], prev = ring[(me + 2) % 3];
  int value = rank, ok_rounds = 0;
  for (int round = 0; round < 20; ++round) {
    int got = -1;
    int rc =
        MPI_Sendrecv(&value, 1, MPI_INT, next, round, &got, 1, MPI_INT, prev, round, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING];
      int len = 0;
      MPI_Error_string(rc, text, &len);
      std::printf("rank %d: sendrecv round %d failed: %s\n", rank, round, text);
      break;
    }
    ++ok_rounds;
  }
  std::printf("rank %d: %d/20 survivor rounds completed\n", rank, ok_rounds);
  // Send to and receive from the dead rank: what does MPI say?
  int x = 7;
  MPI_Request send_req, recv_req;
  int rc_s = MPI_Isend(&x, 1, MPI_INT, dead, 99, MPI_COMM_WORLD, &send_req);
  int y = 0;
  int rc_r = MPI_Irecv(&y, 1, MPI_INT, dead, 99, MPI_COMM_WORLD, &recv_req);
  std::printf("rank %d: isend to dead rc=%d, irecv from dead rc=%d\n", rank, rc_s, rc_r);
  int done = 0;
  auto start = std::chrono::steady_clock::now();
  int rc_t = MPI_SUCCESS;
  while (!done && std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    rc_t = MPI_Test(&recv_req, &done, MPI_STATUS_IGNORE);
    if (rc_t != MPI_SUCCESS)
      break;
  }
  std::printf("rank %d: recv from dead after 2 s: done=%d rc=%d (no failure notification if done=0, rc=0)\n", rank,
              done, rc_t);
  int sent = 0;
  int rc_st = MPI_Test(&send_req, &sent, MPI_STATUS_IGNORE);
  std::printf("rank %d: small isend to dead: completed=%d rc=%d (completed=1: the sender cannot tell it was lost)\n",
              rank, sent, rc_st);
  std::fflush(stdout);
  _exit(0);  // MPI_Finalize would fence with the dead process
}
