// The simulator's public surface: a seeded synthetic listening world (catalogue, users with true
// tastes, their play/search events) and the files it writes. The events are events/event-record.ts's
// EventRecords; events/jsonl.ts reads the JSONL it writes. The `taste simulate` command is
// cli/simulate-command.ts.
export { createCatalogue, defaultCatalogueOptions, type Catalogue, type CatalogueItem, type CatalogueOptions } from './catalogue.js';
export { SimulatorError, SimulatorErrorCodes } from './errors.js';
export { writeCatalogueTsv, writeEventsJsonl, writeLatentTastes, type WriteEventsOptions } from './jsonl.js';
export { Random, createZipfSampler, hashSeed, WeightedSampler, type Seed } from './random.js';
export { streamRealtimeEvents, defaultRealtimeOptions, type RealtimeOptions } from './realtime.js';
export { EventStats } from './stats.js';
export type { SimUser, TasteGenre } from './users.js';
export { createWorld, defaultSimulationOptions, simulateEvents, World, type SimulationOptions } from './world.js';
