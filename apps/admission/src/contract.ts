// What the webhook needs from the decision engine (apps/admission/src/engine.ts implements it:
// PolicyEngine). Kept as a structural interface so that the server can be tested with a stand-in
// engine and the engine can evolve without the server importing its internals.

export interface ImageCheck {
  /** The image reference as written in the pod spec. */
  image: string;
  namespace: string;
  /** The kind of the resource under review (Pod, Deployment...). */
  kind: string;
  /** The resource's own labels (for `match` selectors). */
  labels: Record<string, string>;
  /** dockerconfigjson objects from the pod's imagePullSecrets and its service account. */
  pullSecrets?: unknown[];
  /** The resource's apiVersion (apps/v1...). */
  apiVersion?: string;
  /** The resource itself, for policies with includeSpec / includeObjectMeta / includeTypeMeta. */
  resource?: { spec?: unknown; metadata?: unknown; typemeta?: unknown };
}

export interface ImageVerdict {
  image: string;
  /** What the image resolved to. */
  digest?: string;
  allowed: boolean;
  /** Why denied; each names the policy and the authority. */
  errors: string[];
  /** warn-mode failures and no-match warnings. */
  warnings: string[];
  /** Names of the policies that matched. */
  policies: string[];
}

export interface AdmissionEngine<Store = unknown> {
  /** Judges one image; honours the signal (the review's deadline). */
  check(req: ImageCheck, signal: AbortSignal): Promise<ImageVerdict>;
  /** A policy reload: verdicts cached under other generations stop matching. */
  setStore(store: Store): void;
}
