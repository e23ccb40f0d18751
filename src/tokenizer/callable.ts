/**
 * Base class whose instances can be called like functions (`tokenizer(text)`, as in transformers), without the
 * `Function` constructor (which a Content-Security-Policy without 'unsafe-eval' forbids): the constructor returns
 * a closure whose prototype is the subclass's, so subclasses initialise their fields on that closure.
 * Subclasses must not declare fields named `name`, `length`, `caller` or `arguments` (function own properties).
 */
export abstract class Callable<Args extends unknown[], Result> {
  constructor() {
    const closure = function (this: unknown, ...args: Args): Result {
      return (closure as unknown as Callable<Args, Result>)._call(...args);
    };
    return Object.setPrototypeOf(closure, new.target.prototype) as Callable<Args, Result>;
  }

  protected abstract _call(...args: Args): Result;
}
