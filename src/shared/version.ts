/** Firedeck's release version, shared by the app and the daemon. */
export const FIREDECK_VERSION = '0.1.0';
