/**
 * User ids we accept: printable, no hash-tag braces (featurestore/keys.ts puts the id in a Redis
 * Cluster hash tag), bounded. Events with another user id are refused (validation.ts), and so are
 * such ids in RPCs and --user.
 */
export const USER_ID_PATTERN = /^[A-Za-z0-9._:@+=-]{1,128}$/;

export function isValidUserId(userId: string): boolean {
  return USER_ID_PATTERN.test(userId);
}
