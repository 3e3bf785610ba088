#include <sys/types.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdint.h>
#include <microhttpd.h>

/* MHD_start_daemon is variadic, which Swift cannot call: this one fixed-arity wrapper is the only C
   the project adds, and it exists for that reason alone. */
static inline struct MHD_Daemon *fleetadapt_mhd_start(unsigned int flags, int listen_fd,
    unsigned int threads, unsigned int connection_timeout, MHD_AccessHandlerCallback handler, void *handler_cls,
    MHD_RequestCompletedCallback completed, void *completed_cls) {
  return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                          MHD_OPTION_LISTEN_SOCKET, listen_fd,
                          MHD_OPTION_THREAD_POOL_SIZE, threads,
                          MHD_OPTION_CONNECTION_TIMEOUT, connection_timeout,
                          MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                          MHD_OPTION_END);
}
