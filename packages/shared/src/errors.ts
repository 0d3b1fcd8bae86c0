/** A JSON value, as carried in `details`. */
export type JSONValue =
  | null
  | string
  | number
  | boolean
  | readonly JSONValue[]
  | { readonly [key: string]: JSONValue | undefined };

/**
 * The app refused a mutation. Thrown from a mutator, it rolls back the mutator's writes,
 * still advances the client's mutation id and reaches the caller as `{error: 'app'}`.
 *
 * @example
 * if (issue.ownerID !== ctx.userID) {
 *   throw new ApplicationError('Only the owner can close an issue', {details: {issueID: issue.id}});
 * }
 */
export class ApplicationError extends Error {
  override readonly name: string = 'ApplicationError';
  readonly code = 'app' as const;
  readonly details: JSONValue | undefined;

  constructor(message: string, options: { details?: JSONValue; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details;
  }
}

/** Why a mutation's arguments were refused before the mutator ran. */
export interface ValidationIssue {
  readonly message: string;
  readonly path: readonly (string | number)[];
}

/**
 * A mutator's arguments failed its validator. It is an application error: the mutation
 * is consumed with an error result, and the mutator body never runs.
 *
 * @example
 * const error = new ValidationError('issue.create', [{message: 'Required', path: ['title']}]);
 * error.message; // 'Invalid arguments for issue.create: title: Required'
 */
export class ValidationError extends ApplicationError {
  override readonly name = 'ValidationError';
  readonly issues: readonly ValidationIssue[];

  constructor(mutatorName: string, issues: readonly ValidationIssue[]) {
    const summary = issues
      .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ` : '') + issue.message)
      .join('; ');
    super(`Invalid arguments for ${mutatorName}: ${summary}`, {
      details: {
        issues: issues.map((issue) => ({ message: issue.message, path: [...issue.path] })),
      },
    });
    this.issues = issues;
  }
}

/**
 * Turns anything a mutator threw into an `ApplicationError`, keeping the original as
 * `cause`. This is the one place app throws become per-mutation results.
 *
 * @example
 * toApplicationError(new TypeError('x is undefined')).message; // 'x is undefined'
 */
export function toApplicationError(error: unknown): ApplicationError {
  if (error instanceof ApplicationError) return error;
  if (error instanceof Error) return new ApplicationError(error.message, { cause: error });
  return new ApplicationError(String(error), { cause: error });
}
