/**
 * Interactive replies (answers to commands, edits after a button press) share the
 * outbox's pacer, so together they stay under Telegram's limits; grammY's auto-retry
 * plugin backs them up by honouring retry_after if Telegram still says 429.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import type { Api, Transformer } from 'grammy';
import type { Pacer } from './pacer.js';

/** Methods that count against Telegram's message limits. */
const PACED = new Set(['sendMessage', 'sendPhoto', 'editMessageText', 'editMessageCaption', 'editMessageReplyMarkup', 'sendDocument', 'sendMediaGroup']);

/** A transformer that waits for the pacer before each message-sending call. */
export function pacingTransformer(pacer: Pacer, maxWaitMs = 30_000): Transformer {
  return async (prev, method, payload, signal) => {
    let taken: { chatId: number; at: number } | null = null;
    if (PACED.has(method)) {
      const chatId = Number((payload as { chat_id?: unknown }).chat_id ?? 0);
      const started = Date.now();
      for (;;) {
        const wait = Math.max(pacer.chatDelay(chatId), pacer.botDelay());
        if (wait <= 0 || Date.now() - started > maxWaitMs) break;
        await new Promise((r) => setTimeout(r, Math.min(wait, 1000)));
      }
      taken = { chatId, at: pacer.take(chatId) };
    }
    let result;
    try {
      result = await prev(method, payload, signal);
    } finally {
      if (taken) pacer.settled(taken.chatId, taken.at);
    }
    // Telegram says the bot went too fast: every sender waits, not only this one.
    if (!result.ok && result.error_code === 429) pacer.pause(Math.max(1, result.parameters?.retry_after ?? 1) * 1000);
    return result;
  };
}

/** Installs pacing and bounded 429 retries on an Api used for interactive replies. */
export function paceInteractiveApi(api: Api, pacer: Pacer): void {
  // Installed first, pacing is the inner layer: every retry waits for the pacer too.
  api.config.use(pacingTransformer(pacer));
  api.config.use(autoRetry({ maxRetryAttempts: 3, maxDelaySeconds: 60, rethrowInternalServerErrors: false, rethrowHttpErrors: true }));
}
