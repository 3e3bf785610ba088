#include <sys/types.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <microhttpd.h>

/* MHD_get_connection_info is variadic, which Swift cannot call: these fixed-arity wrappers exist only for that. */
static inline int fleetadapt_mhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : (int)info->connect_fd;
}

static inline const struct sockaddr *fleetadapt_mhd_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/* MHD_get_daemon_info is variadic too: the connections a daemon still holds (a retired daemon drains to zero). */
static inline unsigned int fleetadapt_mhd_daemon_connections(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info == NULL ? 0 : info->num_connections;
}

/* MHD_OPTION_EXTERNAL_LOGGER passes a va_list, which a Swift @convention(c) function cannot take: this formats the
   message and hands it to `cls`, a plain C function pointer of Swift's (a top-level function, no context). */
typedef void (*fleetadapt_mhd_message_fn)(const char *message);
static inline void fleetadapt_mhd_logger(void *cls, const char *format, va_list arguments) {
    char buffer[1024];
    if (cls == NULL || format == NULL) return;
    if (vsnprintf(buffer, sizeof buffer, format, arguments) < 0) return;
    ((fleetadapt_mhd_message_fn)cls)(buffer);
}
static inline void *fleetadapt_mhd_logger_callback(void) { return (void *)fleetadapt_mhd_logger; }
