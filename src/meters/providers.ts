// The AI providers a route can name in "meter".
import { anthropic } from './anthropic.ts';
import { openai } from './openai.ts';
import type { Provider, ProviderName } from './provider.ts';

export const PROVIDERS: Readonly<Record<ProviderName, Provider>> = Object.freeze({ openai, anthropic });
