/**
 * Sending on a node:cluster IPC channel that may be closing. A worker that is exiting
 * (shutdown, crash, kill -9) closes its channel at a moment the other side cannot
 * foresee: `send()` without a callback then emits 'error' (ERR_IPC_CHANNEL_CLOSED, or
 * EPIPE when the peer went away mid-write) on the process object, and an 'error' event
 * nobody listens to is an uncaught exception that takes the whole primary down. Every
 * message between the primary and its workers is advisory (a lost one is covered by a
 * timeout or an 'exit' event), so a send to a closed channel is dropped, not thrown.
 */

/** What both ends of the channel have: a worker's ChildProcess in the primary, `process` in a worker. */
export interface IpcChannel {
  readonly connected: boolean;
  send?(message: unknown, callback: (err: Error | null) => void): boolean;
}

/**
 * Sends `message` if the channel is open: false when it is closed. (send()'s own false
 * means "queued behind a backlog", not "dropped".) A channel found closed while writing
 * drops the message quietly.
 */
export function sendIpc(channel: IpcChannel, message: unknown): boolean {
  if (!channel.connected || !channel.send) return false;
  // With a callback, a write error goes to it instead of an 'error' event.
  channel.send(message, ignoreClosedChannel);
  return true;
}

function ignoreClosedChannel(): void {
  // The peer is exiting: its 'exit' (or the caller's timeout) accounts for the message.
}
