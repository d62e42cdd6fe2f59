// The simulator's public surface: a seeded synthetic listening world (catalogue, users with true
// tastes, their play/search events) and its file formats. The `taste simulate` command that writes
// them is cli/simulate-command.ts.
export { createCatalogue, defaultCatalogueOptions, type Catalogue, type CatalogueItem, type CatalogueOptions } from './catalogue.js';
export { JsonlLineError, SimulatorError, SimulatorErrorCodes } from './errors.js';
export {
  eventToJson,
  parseEventLine,
  readEventsJsonl,
  writeCatalogueTsv,
  writeEventsJsonl,
  writeLatentTastes,
  type JsonlRecord,
  type ReadEventsOptions,
  type WriteEventsOptions,
} from './jsonl.js';
export { Random, createZipfSampler, hashSeed, WeightedSampler, type Seed } from './random.js';
export { streamRealtimeEvents, defaultRealtimeOptions, type RealtimeOptions } from './realtime.js';
export type { SimEvent } from './sim-event.js';
export { EventStats } from './stats.js';
export type { SimUser, TasteGenre } from './users.js';
export { createWorld, defaultSimulationOptions, simulateEvents, World, type SimulationOptions } from './world.js';
