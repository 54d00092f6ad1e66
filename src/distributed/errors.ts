/**
 * The error type of the `distributed` namespace.
 *
 * @module
 */

/**
 * A collective or process-group call failed: the group is not initialised,
 * an engine returned an error code (the message carries the engine's text
 * and code, and the rank), or ranks disagree on a shape or dtype.
 */
export class DistributedError extends Error {
  /**
   * Creates the error.
   *
   * @param message What failed and on which rank.
   */
  constructor(message: string) {
    super(message);
    this.name = "DistributedError";
  }
}
