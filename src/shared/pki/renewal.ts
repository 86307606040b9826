/**
 * When a certificate is renewed, everywhere on the platform: at two thirds of its life (the master's own, site
 * certificates from the sites CA or ACME, hyper_db members'). A third of the life is left for renewal to fail and
 * be tried again before anything expires.
 */
export function renewalAtMs(notBeforeMs: number, notAfterMs: number): number {
  return notBeforeMs + ((notAfterMs - notBeforeMs) * 2) / 3;
}
