/**
 * The deliverer's way to Telegram, through grammY's Api: one request per part, with
 * Telegram's and the network's answers sorted into SendFailure kinds.
 */
import { type Api, GrammyError, HttpError, InputFile } from 'grammy';
import type { MessageEntity } from 'grammy/types';
import { SendFailure, type TelegramTransport } from '../delivery/deliverer.js';
import type { Part } from '../format/render.js';

const MARKUP = /can't parse entities|can't find end|unsupported start tag|entity|character .* is reserved/i;
const IMAGE = /IMAGE_PROCESS_FAILED|PHOTO_INVALID|PHOTO_EXT_INVALID|wrong type of the web page|wrong file identifier|failed to get HTTP URL content|PHOTO_INVALID_DIMENSIONS|PHOTO_SAVE_FILE_INVALID/i;
const GONE = /chat not found|user not found|PEER_ID_INVALID|bot was blocked|user is deactivated|bot was kicked|not enough rights|have no rights|CHAT_WRITE_FORBIDDEN|group chat was upgraded/i;

/**
 * Error texts of the network layer quote the request URL, which holds the bot token; they
 * end up in dead letters, the outcome log and `notify-bot queue list`, so the token goes.
 */
export function withoutToken(text: string): string {
  return text.replace(/\/bot\d+:[^/\s]+/g, '/bot<token>');
}

/** Sorts an error from grammY into what the deliverer should do about it. */
export function classifyTelegramError(err: unknown): SendFailure {
  if (err instanceof SendFailure) return err;
  if (err instanceof GrammyError) {
    const desc = `${err.error_code}: ${err.description}`;
    if (err.error_code === 429) {
      const seconds = err.parameters.retry_after ?? 1;
      return new SendFailure('rate_limited', desc, Math.max(1, seconds) * 1000);
    }
    // A group upgraded to a supergroup lives on under a new id: follow it.
    const migrateTo = err.parameters.migrate_to_chat_id;
    if (err.error_code === 400 && migrateTo !== undefined) return new SendFailure('migrated', desc, 0, migrateTo);
    if (err.error_code === 403 || (err.error_code === 400 && GONE.test(err.description))) return new SendFailure('refused', desc);
    if (err.error_code === 400 && IMAGE.test(err.description)) return new SendFailure('image', desc);
    if (err.error_code === 400 && MARKUP.test(err.description)) return new SendFailure('markup', desc);
    if (err.error_code === 400) return new SendFailure('bad_request', desc);
    return new SendFailure('transient', desc);
  }
  if (err instanceof HttpError) {
    const inner = err.error instanceof Error ? err.error.message : String(err.error);
    return new SendFailure('transient', withoutToken(`network error: ${inner}`));
  }
  return new SendFailure('transient', withoutToken(err instanceof Error ? err.message : String(err)));
}

/** Sends parts with grammY. */
export class GrammyTransport implements TelegramTransport {
  constructor(private readonly api: Api) {}

  async send(chatId: number, part: Part, photo: Buffer | null, replyMarkup: unknown, replyTo?: number): Promise<number> {
    // A deleted original must not cost the message: send it without the reply then.
    const markup = {
      ...(replyMarkup ? { reply_markup: replyMarkup as never } : {}),
      ...(replyTo !== undefined ? { reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } } : {}),
    };
    try {
      if (part.kind === 'photo' && photo) {
        const caption = part.text ? { caption: part.text } : {};
        const format = part.parseMode
          ? { parse_mode: part.parseMode }
          : part.entities && part.entities.length > 0 && part.text
            ? { caption_entities: part.entities as MessageEntity[] }
            : {};
        const m = await this.api.sendPhoto(chatId, new InputFile(photo, 'image'), { ...caption, ...format, ...markup });
        return m.message_id;
      }
      const format = part.parseMode
        ? { parse_mode: part.parseMode }
        : part.entities && part.entities.length > 0
          ? { entities: part.entities as MessageEntity[] }
          : {};
      const m = await this.api.sendMessage(chatId, part.text, { ...format, ...markup });
      return m.message_id;
    } catch (err) {
      throw classifyTelegramError(err);
    }
  }
}
