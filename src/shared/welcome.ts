/**
 * The message an analyst receives in Telegram right after linking, whether they linked
 * with a code on the dashboard or in one tap through a deep link. One text, two senders.
 */

/** Where analysts put their notification scripts (the runner's contract). */
export const SCRIPTS_DIR = '~/user/notifications/';

/** A notification in the send API's structured form (`title` is made bold by the bot). */
export interface WelcomeMessage {
  title: string;
  /** Telegram legacy Markdown (the send API's default parse mode). */
  message: string;
}

/**
 * The welcome message for `username`. Names that may hold `_` or `*` (server logins, the
 * scripts path) sit in code spans, where legacy Markdown takes them literally.
 */
export function welcomeMessage(username: string): WelcomeMessage {
  // A backtick would end the code span early; no real login has one, but never break the message.
  const login = username.replace(/`/g, "'");
  const message = [
    `This chat is now linked to your server account \`${login}\`.`,
    '',
    `Put your notification scripts (Python files) in \`${SCRIPTS_DIR}\`. The runner starts each one on a schedule; a script prints one JSON object saying whether to notify, for example:`,
    '```',
    'import json',
    'print(json.dumps({',
    '    "notify": True,',
    '    "title": "Revenue dropped 25%",',
    '    "message": "Today: $45k, 7-day average: $60k",',
    '    "cooldown": "6h",',
    '}))',
    '```',
    'Print {"notify": false} when there is nothing to report. Not sure where to start? Ask your AI assistant to write a notification script for you and save it in that folder.',
    '',
    'Alerts from your scripts will arrive here. Send /status to see your scripts and /help for the other commands.',
  ].join('\n');
  return { title: 'Telegram notifications are on', message };
}
