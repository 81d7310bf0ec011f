/**
 * The stage kit: how every stage of every job is written and composed.
 */
export { generatorStage, orderedMap, type StageOptions } from './generator.js';
export { declareStage, checkStages, contractOf, type StageContract } from './contract.js';
export { failItem, type ErrorDecision, type ItemFailure, type OnError } from './on-error.js';
