/** A host name (lower case, labels of letters, digits and inner hyphens), or a `*.` wildcard over one. */
export const DNS_NAME =
  /^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
