/* qslab node: command dispatch and main loop (PROTOCOL.md). */
#ifndef QS_NODE_H
#define QS_NODE_H

#include <stddef.h>

/* Prints boot text and the boot event, then serves the serial line until qs_port_should_exit(). */
void qs_node_run(int after_reset);
/* Handles one received line (no terminator); exposed for tests. */
void qs_node_handle_line(const char *line, size_t len);
/* Writes one console (non-frame) line, ESP-IDF style: "I (<ms>) qslab: <text>". */
void qs_node_log(char level, const char *text);

#endif
