// The genres of the synthetic catalogue. Genres in one family sit close together in the latent
// space, which is what makes "genre drift" (indie rock -> punk, techno -> house) plausible.
import type { ItemKind__Output } from '../proto/generated/taste/v1/ItemKind.js';

/** How artist (or show/author) names look in a genre. */
export const NameStyles = {
  band: 'band',
  person: 'person',
  dj: 'dj',
  rapper: 'rapper',
  idol: 'idol',
  ensemble: 'ensemble',
  show: 'show',
} as const;
export type NameStyle = (typeof NameStyles)[keyof typeof NameStyles];

/** How titles look in a genre. */
export const TitleStyles = {
  song: 'song',
  classical: 'classical',
  episode: 'episode',
  chapter: 'chapter',
} as const;
export type TitleStyle = (typeof TitleStyles)[keyof typeof TitleStyles];

export interface GenreSpec {
  readonly name: string;
  readonly kind: ItemKind__Output;
  readonly family: string;
  /** Relative share of its kind's items and of listeners choosing it as their main genre. */
  readonly share: number;
  readonly durationMeanSec: number;
  readonly durationSdSec: number;
  readonly nameStyle: NameStyle;
  readonly titleStyle: TitleStyle;
}

const track = (
  name: string,
  family: string,
  share: number,
  durationMeanSec: number,
  durationSdSec: number,
  nameStyle: NameStyle,
  titleStyle: TitleStyle = TitleStyles.song,
): GenreSpec => ({ name, kind: 'ITEM_KIND_TRACK', family, share, durationMeanSec, durationSdSec, nameStyle, titleStyle });

/** 16 music genres in 6 families. */
export const musicGenres: readonly GenreSpec[] = [
  track('indie rock', 'rock', 1.2, 225, 45, 'band'),
  track('punk', 'rock', 0.6, 150, 35, 'band'),
  track('metal', 'rock', 0.8, 290, 70, 'band'),
  track('folk', 'roots', 0.7, 220, 50, 'person'),
  track('country', 'roots', 0.9, 205, 35, 'person'),
  track('blues', 'roots', 0.5, 260, 60, 'person'),
  track('jazz', 'art', 0.7, 360, 120, 'ensemble'),
  track('classical', 'art', 0.8, 420, 200, 'person', TitleStyles.classical),
  track('techno', 'electronic', 0.8, 400, 90, 'dj'),
  track('house', 'electronic', 0.9, 350, 80, 'dj'),
  track('ambient', 'electronic', 0.5, 380, 120, 'dj'),
  track('hip hop', 'urban', 1.5, 200, 40, 'rapper'),
  track('r&b', 'urban', 1.0, 215, 40, 'person'),
  track('reggaeton', 'urban', 0.9, 195, 30, 'rapper'),
  track('pop', 'pop', 1.6, 200, 30, 'person'),
  track('k-pop', 'pop', 1.0, 195, 25, 'idol'),
];

/** Podcast topics: each has shows, each show has episodes. */
export const podcastTopics: readonly GenreSpec[] = [
  { name: 'true crime', kind: 'ITEM_KIND_PODCAST_EPISODE', family: 'podcast', share: 1.2, durationMeanSec: 2700, durationSdSec: 900, nameStyle: 'show', titleStyle: 'episode' },
  { name: 'comedy', kind: 'ITEM_KIND_PODCAST_EPISODE', family: 'podcast', share: 1.0, durationMeanSec: 3600, durationSdSec: 1200, nameStyle: 'show', titleStyle: 'episode' },
  { name: 'technology', kind: 'ITEM_KIND_PODCAST_EPISODE', family: 'podcast', share: 0.8, durationMeanSec: 2400, durationSdSec: 800, nameStyle: 'show', titleStyle: 'episode' },
  { name: 'news', kind: 'ITEM_KIND_PODCAST_EPISODE', family: 'podcast', share: 1.0, durationMeanSec: 1500, durationSdSec: 500, nameStyle: 'show', titleStyle: 'episode' },
  { name: 'sports', kind: 'ITEM_KIND_PODCAST_EPISODE', family: 'podcast', share: 0.7, durationMeanSec: 3000, durationSdSec: 900, nameStyle: 'show', titleStyle: 'episode' },
  { name: 'history', kind: 'ITEM_KIND_PODCAST_EPISODE', family: 'podcast', share: 0.6, durationMeanSec: 3300, durationSdSec: 1000, nameStyle: 'show', titleStyle: 'episode' },
];

/** Audiobook categories: each has authors, each author books, each book chapters. */
export const audiobookGenres: readonly GenreSpec[] = [
  { name: 'fantasy', kind: 'ITEM_KIND_AUDIOBOOK_CHAPTER', family: 'audiobook', share: 1.0, durationMeanSec: 1500, durationSdSec: 500, nameStyle: 'person', titleStyle: 'chapter' },
  { name: 'mystery', kind: 'ITEM_KIND_AUDIOBOOK_CHAPTER', family: 'audiobook', share: 1.0, durationMeanSec: 1300, durationSdSec: 400, nameStyle: 'person', titleStyle: 'chapter' },
  { name: 'science fiction', kind: 'ITEM_KIND_AUDIOBOOK_CHAPTER', family: 'audiobook', share: 0.8, durationMeanSec: 1600, durationSdSec: 500, nameStyle: 'person', titleStyle: 'chapter' },
  { name: 'biography', kind: 'ITEM_KIND_AUDIOBOOK_CHAPTER', family: 'audiobook', share: 0.6, durationMeanSec: 1800, durationSdSec: 600, nameStyle: 'person', titleStyle: 'chapter' },
];

/** Every genre, in catalogue order (genre index = position here). */
export const allGenres: readonly GenreSpec[] = [...musicGenres, ...podcastTopics, ...audiobookGenres];
