import type { ChannelsConfig } from '../../../config/schema-channels.ts';
import type { ChannelDefinition } from '../types.ts';
import { createWhatsAppAdapter } from './adapter.ts';

export { createWhatsAppAdapter, WHATSAPP_WEBHOOK_PATH, type WhatsAppAdapterOptions } from './adapter.ts';
export {
  createWhatsAppClient,
  WHATSAPP_API_ROOT,
  WHATSAPP_API_VERSION,
  WHATSAPP_TEXT_LIMIT,
  type WhatsAppClient,
  whatsAppMessagesUrl,
} from './api.ts';
export { signWhatsAppBody, verifyWhatsAppSignature } from './signature.ts';

/** The `channels.whatsapp` config section. */
export type WhatsAppConfig = ChannelsConfig['whatsapp'];

/** The four variables WhatsApp needs, by config key. */
const REQUIRED = [
  ['appSecret', 'WHATSAPP_APP_SECRET'],
  ['verifyToken', 'WHATSAPP_VERIFY_TOKEN'],
  ['accessToken', 'WHATSAPP_ACCESS_TOKEN'],
  ['phoneNumberId', 'WHATSAPP_PHONE_NUMBER_ID'],
] as const;

/** WhatsApp Cloud API. On when its app secret, verify token, access token and phone number id are set. */
export const whatsappChannel: ChannelDefinition = {
  name: 'whatsapp',
  missing: (config) => REQUIRED.filter(([key]) => !config.whatsapp[key]).map(([, env]) => env),
  access: (config) => config.whatsapp,
  create: ({ config, logger }) => {
    const section = config.whatsapp;
    return createWhatsAppAdapter({
      appSecret: section.appSecret ?? '',
      verifyToken: section.verifyToken ?? '',
      accessToken: section.accessToken ?? '',
      phoneNumberId: section.phoneNumberId ?? '',
      apiRoot: section.apiRoot,
      apiVersion: section.apiVersion,
      logger,
    });
  },
};
