/** Injected by tsup from package.json. */
declare const __ZBUS_VERSION__: string;
