// @zbus/broker: the `zbus` binary. As a library it exposes how the CLI turns flags into broker options.
export { optionsFromArgs, SERVE_HELP, serve } from './serve.js';
