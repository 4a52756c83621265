// The broker's JSON replies are typed once, in `@zbus/protocol` (info.ts there). This file only passes them on
// for modules that still import `./info.js`.
export type { ConsumeGroupInfo, ServerAddress, ServerInfo, TopicInfo, TrackerInfo } from '@zbus/protocol';
