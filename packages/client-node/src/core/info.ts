/** JSON shapes the broker answers with (zbus-protocol.md §6; 0.11 field names). */

export interface ServerAddress {
  address: string;
  sslEnabled: boolean;
}

export interface ConsumeGroupInfo {
  topicName: string;
  groupName: string;
  mask: number;
  filter?: string | null;
  messageCount: number;
  consumerCount: number;
  consumerList: string[];
  creator?: string | null;
  createdTime: number;
  lastUpdatedTime: number;
  [extra: string]: unknown;
}

export interface TopicInfo {
  serverAddress: ServerAddress;
  serverVersion: string;
  topicName: string;
  mask: number;
  messageDepth: number;
  consumerCount: number;
  consumeGroupList: ConsumeGroupInfo[];
  creator?: string | null;
  createdTime: number;
  lastUpdatedTime: number;
  [extra: string]: unknown;
}

export interface ServerInfo {
  serverAddress: ServerAddress;
  serverVersion: string;
  infoVersion: number;
  trackerList: ServerAddress[];
  topicTable: Record<string, TopicInfo>;
  [extra: string]: unknown;
}

export interface TrackerInfo {
  serverAddress: ServerAddress;
  serverVersion: string;
  infoVersion: number;
  serverTable: Record<string, ServerInfo>;
  [extra: string]: unknown;
}
