// Promise wrappers over the callback API of the official Node IronMQ client, shared by the
// scripts the client tests run.

// Calls fn(...args, callback) and resolves with the body (rejects with the client's error).
function call(fn, ...args) {
  return new Promise((resolve, reject) =>
    fn(...args, (error, body) => (error ? reject(Object.assign(new Error(String(error)), { body })) : resolve(body))));
}

// The error message of a call that must fail.
async function expectError(fn, ...args) {
  try {
    await call(fn, ...args);
  } catch (error) {
    return String(error.message);
  }
  throw new Error("expected an error");
}

module.exports = { call, expectError };
