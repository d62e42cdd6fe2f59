// Artist, show, album and title generators: syllables and word lists, so names look like names
// and search queries built from them look like what people type.
import type { Random } from './random.js';
import type { NameStyle, TitleStyle } from './genres.js';

const onsets = ['b', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'ch', 'dr', 'kr', 'sh', 'st', 'th', 'tr'] as const;
const vowels = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'o', 'ai', 'ei', 'ia', 'ou'] as const;
const codas = ['', '', '', 'n', 'r', 's', 'l', 'm', 'x', 'k', 'th', 'nd'] as const;

const adjectives = [
  'Velvet', 'Electric', 'Silent', 'Golden', 'Broken', 'Neon', 'Crimson', 'Hollow', 'Wild', 'Midnight',
  'Paper', 'Lunar', 'Bitter', 'Endless', 'Quiet', 'Burning', 'Frozen', 'Lost', 'Sweet', 'Dusty',
  'Static', 'Blue', 'Silver', 'Restless', 'Faded', 'Savage', 'Gentle', 'Stolen', 'Distant', 'Violet',
  'Heavy', 'Tender', 'Hidden', 'Sunday', 'Northern', 'Cosmic', 'Rusty', 'Glass', 'Lonely', 'Bright',
] as const;
const nouns = [
  'Heart', 'River', 'Mirror', 'Shadow', 'Highway', 'Garden', 'Ocean', 'Fire', 'Signal', 'Window',
  'Ghost', 'Summer', 'Winter', 'Machine', 'Dream', 'Harbor', 'Thunder', 'Echo', 'Satellite', 'Desert',
  'Lantern', 'Storm', 'Paradise', 'Horizon', 'Letter', 'Feather', 'Engine', 'Island', 'Mountain', 'Rain',
  'City', 'Wolf', 'Diamond', 'Orchid', 'Circus', 'Tide', 'Comet', 'Carousel', 'Anthem', 'Skyline',
  'Lullaby', 'Cathedral', 'Parade', 'Spark', 'Canyon', 'Moth', 'Telephone', 'Wire', 'Bloom', 'Crown',
] as const;
const pluralNouns = ['Wolves', 'Echoes', 'Ghosts', 'Machines', 'Lanterns', 'Comets', 'Satellites', 'Strangers', 'Orchids', 'Kings', 'Rivers', 'Shadows', 'Foxes', 'Sparks', 'Pilots'] as const;
const verbs = ['Chasing', 'Falling', 'Running', 'Dancing', 'Waiting', 'Burning', 'Holding', 'Leaving', 'Dreaming', 'Calling', 'Breaking', 'Drifting'] as const;
const places = ['Tokyo', 'Berlin', 'Lagos', 'Memphis', 'Havana', 'Seoul', 'Paris', 'Detroit', 'Lisbon', 'Nashville', 'Bogota', 'Oslo', 'Cairo', 'Mumbai'] as const;
const ensembles = ['Trio', 'Quartet', 'Quintet', 'Sextet', 'Big Band', 'Ensemble', 'Collective'] as const;
const showSuffixes = ['Podcast', 'Hour', 'Show', 'Files', 'Weekly', 'Daily', 'Radio', 'Talks', 'Club', 'Diaries'] as const;
const classicalForms = ['Sonata', 'Nocturne', 'Prelude', 'Etude', 'Symphony', 'Concerto', 'Waltz', 'Fugue', 'Suite', 'Serenade', 'Rhapsody', 'Partita'] as const;
const keys = ['C major', 'C minor', 'D major', 'D minor', 'E-flat major', 'E minor', 'F major', 'F-sharp minor', 'G major', 'G minor', 'A major', 'A minor', 'B-flat major', 'B minor'] as const;
const episodeTopics = ['The Case', 'Inside', 'Why We', 'The Truth About', 'Remembering', 'How To', 'The Rise of', 'Behind', 'Ask Us About', 'The Fall of'] as const;

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** A pronounceable made-up word of 2–3 syllables ("Kaivor", "Shelanx"). */
export function syllableWord(rng: Random, minSyllables = 2, maxSyllables = 3): string {
  const count = rng.intBetween(minSyllables, maxSyllables);
  let word = '';
  for (let i = 0; i < count; i++) {
    word += rng.pick(onsets) + rng.pick(vowels);
    if (i === count - 1 || rng.chance(0.25)) word += rng.pick(codas);
  }
  return capitalize(word);
}

function personName(rng: Random): string {
  return `${syllableWord(rng, 2, 2)} ${syllableWord(rng, 2, 3)}`;
}

/** An artist / show / author name in the genre's style. Uniqueness is the caller's job. */
export function artistName(rng: Random, style: NameStyle): string {
  switch (style) {
    case 'band': {
      const r = rng.float();
      if (r < 0.35) return `The ${rng.pick(adjectives)} ${rng.pick(pluralNouns)}`;
      if (r < 0.65) return `${rng.pick(adjectives)} ${rng.pick(nouns)}`;
      if (r < 0.85) return `${syllableWord(rng)} & the ${rng.pick(pluralNouns)}`;
      return syllableWord(rng, 2, 3);
    }
    case 'person':
      return personName(rng);
    case 'dj':
      return rng.chance(0.5) ? `DJ ${syllableWord(rng, 1, 2)}` : `${syllableWord(rng)} ${rng.pick(nouns)}`;
    case 'rapper': {
      const r = rng.float();
      if (r < 0.3) return `Lil ${syllableWord(rng, 1, 2)}`;
      if (r < 0.5) return `MC ${syllableWord(rng, 1, 2)}`;
      if (r < 0.75) return `Young ${syllableWord(rng, 2, 2)}`;
      return syllableWord(rng, 2, 3);
    }
    case 'idol':
      return rng.chance(0.6) ? syllableWord(rng, 1, 2).toUpperCase() : `${syllableWord(rng, 1, 2).toUpperCase()}-${rng.intBetween(2, 9)}`;
    case 'ensemble':
      return rng.chance(0.6) ? `${personName(rng)} ${rng.pick(ensembles)}` : personName(rng);
    case 'show':
      return rng.chance(0.5)
        ? `The ${rng.pick(nouns)} ${rng.pick(showSuffixes)}`
        : `${rng.pick(adjectives)} ${rng.pick(nouns)} ${rng.pick(showSuffixes)}`;
  }
}

/** An album, show-season or book title. */
export function albumTitle(rng: Random): string {
  const r = rng.float();
  if (r < 0.4) return `${rng.pick(adjectives)} ${rng.pick(nouns)}`;
  if (r < 0.6) return `${rng.pick(nouns)} of ${rng.pick(nouns)}`;
  if (r < 0.8) return `${rng.pick(verbs)} ${rng.pick(places)}`;
  return rng.pick(nouns) + 's';
}

/** An item title. `position` is the 1-based track/episode/chapter number. */
export function itemTitle(rng: Random, style: TitleStyle, position: number, album: string): string {
  switch (style) {
    case 'song': {
      const r = rng.float();
      if (r < 0.35) return `${rng.pick(adjectives)} ${rng.pick(nouns)}`;
      if (r < 0.55) return `${rng.pick(verbs)} ${rng.pick(nouns)}s`;
      if (r < 0.7) return `${rng.pick(nouns)} in ${rng.pick(places)}`;
      if (r < 0.85) return `${rng.pick(nouns)} ${rng.pick(nouns)}`;
      return rng.pick(nouns);
    }
    case 'classical':
      return `${rng.pick(classicalForms)} No. ${rng.intBetween(1, 24)} in ${rng.pick(keys)}`;
    case 'episode':
      return `Ep. ${position}: ${rng.pick(episodeTopics)} ${rng.pick(adjectives)} ${rng.pick(nouns)}`;
    case 'chapter':
      return `${album}, Chapter ${position}`;
  }
}
