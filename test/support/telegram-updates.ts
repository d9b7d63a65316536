// The phone's side of the webhook for the Node tests: updates shaped as Telegram
// delivers them (a typed command, a button press), and the inline keyboard the Worker
// attached to a message the Telegram stand-in recorded. Each update gets its own
// update_id, since the Worker handles an update_id once.
import type { RecordedCall } from "./fake-telegram.ts";

export interface TelegramUser {
  id: number;
  is_bot: false;
  first_name: string;
  username?: string;
}

let nextUpdateId = 500_000;
let nextMessageId = 9_000;

function chatType(chatId: number): "private" | "group" {
  return chatId > 0 ? "private" : "group";
}

/** A text message, as Telegram delivers a command typed in a chat. */
export function textUpdate(options: { chatId: number; from: TelegramUser; text: string }): Record<string, unknown> {
  const command = options.text.split(" ")[0] ?? "";
  return {
    update_id: ++nextUpdateId,
    message: {
      message_id: ++nextMessageId,
      date: Math.floor(Date.now() / 1000),
      chat: { id: options.chatId, type: chatType(options.chatId) },
      from: options.from,
      text: options.text,
      entities: command.startsWith("/") ? [{ offset: 0, length: command.length, type: "bot_command" }] : [],
    },
  };
}

/** A press on a button under message `messageId`, carrying that message's keyboard as Telegram does. */
export function buttonPress(options: { chatId: number; from: TelegramUser; data: string; messageId: number; keyboard?: InlineKeyboard }): Record<string, unknown> {
  const updateId = ++nextUpdateId;
  return {
    update_id: updateId,
    callback_query: {
      id: `cb-${updateId}`,
      from: options.from,
      chat_instance: `ci-${options.chatId}`,
      data: options.data,
      message: {
        message_id: options.messageId,
        date: Math.floor(Date.now() / 1000),
        chat: { id: options.chatId, type: chatType(options.chatId) },
        ...(options.keyboard === undefined ? {} : { reply_markup: options.keyboard }),
      },
    },
  };
}

export interface InlineButton {
  text: string;
  callback_data?: string;
}

export interface InlineKeyboard {
  inline_keyboard: InlineButton[][];
}

function isButton(value: unknown): value is InlineButton {
  if (typeof value !== "object" || value === null) return false;
  const { text, callback_data: data } = value as { text?: unknown; callback_data?: unknown };
  return typeof text === "string" && (data === undefined || typeof data === "string");
}

/** The inline keyboard under a recorded sendMessage, or undefined when it has none. */
export function keyboardOf(call: RecordedCall): InlineKeyboard | undefined {
  const markup = call.payload.reply_markup;
  if (typeof markup !== "object" || markup === null) return undefined;
  const rows = (markup as { inline_keyboard?: unknown }).inline_keyboard;
  if (!Array.isArray(rows)) return undefined;
  const keyboard: InlineButton[][] = [];
  for (const row of rows as unknown[]) {
    if (!Array.isArray(row) || !row.every(isButton)) return undefined;
    keyboard.push(row);
  }
  return { inline_keyboard: keyboard };
}
